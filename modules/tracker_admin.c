/* tracker_admin.c: being written. */
#include "tracker_admin.h"
