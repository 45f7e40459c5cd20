/* pq_floor.c: the least a tick can cost here. Connects with libpq the way
 * wf2jsm does (same URL, same session options), runs one trivial query and
 * exits; linked against libpq and libcurl like wf2jsm so that process start
 * is the same. The benchmark reports its median beside the tick's. */
#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc > 5) curl_version_info(CURLVERSION_NOW); /* keep libcurl linked */
    const char *keys[] = {"dbname", "options", "application_name", NULL};
    const char *vals[] = {getenv("WEBFORM_DB_URL"), "-c TimeZone=UTC -c DateStyle=ISO,YMD", "pq_floor", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    int rc = 1;
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, "SELECT 1");
        rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : 1;
        PQclear(res);
    }
    PQfinish(conn);
    return rc;
}
