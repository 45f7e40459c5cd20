/* curl_loader.h: libcurl loaded on first use (see curl_loader.c). The
 * program calls libcurl's own API from <curl/curl.h>; this header only
 * adds the reason a load failed. */
#ifndef WF_CURL_LOADER_H
#define WF_CURL_LOADER_H

/* Why libcurl could not be loaded (naming the file and the fix), or NULL
 * when it loaded or was never needed. Static storage; never fails. */
const char *wf_curl_load_error(void);

#endif
