import Pipeline
import Testing

/// The gate decisions, without a database: which bound breaks, and the figure the message gives.
@Suite struct QualityGatesTests {
    let facts = GateFacts(rowsRead: 100, quarantined: 10, newSamples: ["train": 72, "val": 9, "test": 9],
                          valueCounts: ["label": ["good": 50, "bad": 30, "meh": 10], "label_id": ["0": 60, "1": 28, "2": 2]])

    @Test func noBoundsNoViolations() {
        #expect(QualityGates.evaluate(Expectations(), facts: facts).isEmpty)
    }

    @Test func boundsAtTheirLimitPass() {
        var expect = Expectations()
        expect.minNewRows = 100
        expect.maxQuarantineRatio = 0.1
        expect.maxSplitShare = 0.8
        expect.allowedLabels = ["label": ["good", "bad", "meh"], "label_id": ["good", "bad", "2"]]
        let names = ["label_id": ["0": ["good"], "1": ["bad"]]]
        #expect(QualityGates.evaluate(expect, facts: facts, labelNames: names).isEmpty)
    }

    @Test func everyBrokenBoundIsNamedWithItsFigure() {
        var expect = Expectations()
        expect.minNewRows = 101
        expect.maxQuarantineRatio = 0.05
        expect.maxSplitShare = 0.7
        expect.allowedLabels = ["label": ["good"], "label_id": ["good", "bad"]]
        let names = ["label_id": ["0": ["good"], "1": ["bad"]]]
        let violations = QualityGates.evaluate(expect, facts: facts, labelNames: names).map(\.description)
        #expect(violations == [
            "min_new_rows: 100 new rows read, at least 101 expected",
            "max_quarantine_ratio: 10 of 100 rows quarantined (10.0%), at most 5.0% allowed",
            "allowed_labels.label: values outside [good]: 'bad' in 30 samples, 'meh' in 10 samples",
            "allowed_labels.label_id: values outside [bad, good]: '2' in 2 samples",
            "max_split_share: split 'train' holds 72 of 90 new samples (80.0%), at most 70.0% allowed",
        ])
    }

    @Test func aLabelOutsideTheListIsShownByName() {
        var expect = Expectations()
        expect.allowedLabels = ["label_id": ["good"]]
        let violations = QualityGates.evaluate(expect, facts: facts, labelNames: ["label_id": ["1": ["bad"], "0": ["good"]]])
        #expect(violations.map(\.description) == ["allowed_labels.label_id: values outside [good]: 'bad' (1) in 28 samples, '2' in 2 samples"])
    }

    @Test func noRowsBreaksOnlyTheMinimum() {
        var expect = Expectations()
        expect.minNewRows = 1
        expect.maxQuarantineRatio = 0
        expect.maxSplitShare = 0.1
        let empty = GateFacts(rowsRead: 0, quarantined: 0, newSamples: [:])
        #expect(QualityGates.evaluate(expect, facts: empty).map(\.bound) == ["min_new_rows"])
    }
}
