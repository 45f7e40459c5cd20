/* tracker_admin.h: being written. */
#ifndef WF_TRACKER_ADMIN_H
#define WF_TRACKER_ADMIN_H
#endif
