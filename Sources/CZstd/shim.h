#ifndef ETL_CZSTD_SHIM_H
#define ETL_CZSTD_SHIM_H
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

/// ZSTD_c_stableInBuffer, an experimental parameter that the library accepts at run time; a function because Swift
/// does not import the macro that names it.
static inline ZSTD_cParameter etl_zstd_stable_input_parameter(void) { return ZSTD_c_stableInBuffer; }
#endif
