#ifndef ETL_CLIBPQ_SHIM_H
#define ETL_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
