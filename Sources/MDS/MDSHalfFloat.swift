/// IEEE 754 binary16 conversions done on bit patterns, because Swift's `Float16` is unavailable on
/// x86_64 macOS and we want the same bytes on every platform. Rounding matches NumPy's `np.float16(x)` for a
/// Python float: one direct rounding from double to half (rounding through float32 first could round twice).
enum HalfFloat {
    /// The binary16 bits nearest to `value` (ties to even), or nil when a finite `value` is too large for
    /// binary16 (it would become infinity). NaN keeps its sign and top payload bits, as NumPy does.
    static func bits(from value: Double) -> UInt16? {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: bits >> 48) & 0x8000
        let exponent = Int((bits >> 52) & 0x7ff)
        let mantissa = bits & 0x000f_ffff_ffff_ffff

        if exponent == 0x7ff {
            if mantissa == 0 { return sign | 0x7c00 }
            var nan = UInt16(truncatingIfNeeded: mantissa >> 42)
            if nan == 0 { nan = 0x200 }  // a payload only in the dropped bits must not turn into infinity
            return sign | 0x7c00 | nan
        }
        if exponent == 0 && mantissa == 0 { return sign }

        let unbiased = exponent - 1023
        if unbiased > 15 { return nil }
        if unbiased >= -14 {
            // Normal half: keep 10 of the 52 mantissa bits and round on the 42 dropped ones.
            var result = UInt32(unbiased + 15) << 10 | UInt32(mantissa >> 42)
            let dropped = mantissa & ((1 << 42) - 1)
            let halfway: UInt64 = 1 << 41
            if dropped > halfway || (dropped == halfway && result & 1 == 1) {
                result += 1  // a carry into the exponent is still the right encoding
            }
            if result >= 0x7c00 { return nil }
            return sign | UInt16(result)
        }
        // Subnormal half: count units of 2^-24. value = significand * 2^(unbiased - 52).
        let significand = mantissa | (1 << 52)
        let shift = 28 - unbiased  // > 42 here
        if shift >= 64 { return sign }
        let quotient = significand >> UInt64(shift)
        let remainder = significand & ((1 << UInt64(shift)) - 1)
        let halfway: UInt64 = 1 << UInt64(shift - 1)
        var result = quotient
        if remainder > halfway || (remainder == halfway && quotient & 1 == 1) { result += 1 }
        return sign | UInt16(result)
    }

    static func double(fromBits bits: UInt16) -> Double {
        let negative = bits & 0x8000 != 0
        let exponent = Int((bits >> 10) & 0x1f)
        let mantissa = UInt64(bits & 0x3ff)
        let magnitude: Double
        switch exponent {
        case 0:
            magnitude = Double(mantissa) * 0x1p-24
        case 0x1f:
            if mantissa == 0 {
                magnitude = .infinity
            } else {
                // Widen the payload into the double's top mantissa bits, keeping it quiet/signalling as it was.
                let payload = 0x7ff0_0000_0000_0000 | (mantissa << 42)
                return Double(bitPattern: payload | (negative ? 1 << 63 : 0))
            }
        default:
            magnitude = Double(1024 + mantissa) * Double(sign: .plus, exponent: exponent - 25, significand: 1)
        }
        return negative ? -magnitude : magnitude
    }
}
