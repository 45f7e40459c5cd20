/* metrics.c: being written. */
#include "metrics.h"
