#ifndef ETL_CFFMPEG_SHIM_H
#define ETL_CFFMPEG_SHIM_H
#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/display.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libswscale/swscale.h>
#include <libswresample/swresample.h>

// AVERROR and friends are function-like macros that Swift cannot import.
static inline int etl_averror(int e) { return AVERROR(e); }
static inline int etl_averror_eof(void) { return AVERROR_EOF; }
static inline int etl_averror_eagain(void) { return AVERROR(EAGAIN); }

// Error codes built with FFERRTAG and the int64 sentinel are macros Swift cannot import either.
static inline int etl_averror_exit(void) { return AVERROR_EXIT; }
static inline int etl_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int64_t etl_nopts_value(void) { return AV_NOPTS_VALUE; }
#endif
