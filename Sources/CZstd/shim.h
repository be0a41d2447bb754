#ifndef ETL_CZSTD_SHIM_H
#define ETL_CZSTD_SHIM_H
#include <zstd.h>
#endif
