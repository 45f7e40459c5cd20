/* metrics.h: being written. */
#ifndef WF_METRICS_H
#define WF_METRICS_H
#endif
