/* pq_floor.c: the least a tick can cost here. Connects with libpq the way
 * wf2jsm does (same URL, same session options), runs one trivial query and
 * exits. Linked against libpq alone: wf2jsm does not link libcurl either
 * (it loads it on the first Jira call). The benchmark reports its median
 * beside the tick's. With PQ_FLOOR_SQL (and its parameters PQ_FLOOR_P1,
 * PQ_FLOOR_P2) it runs that query instead: given the tick's own window
 * query, it shows how much of the tick is the query's server time. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *keys[] = {"dbname", "options", "application_name", NULL};
    const char *vals[] = {getenv("WEBFORM_DB_URL"), "-c TimeZone=UTC -c DateStyle=ISO,YMD", "pq_floor", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    int rc = 1;
    if (PQstatus(conn) == CONNECTION_OK) {
        const char *sql = getenv("PQ_FLOOR_SQL");
        const char *params[] = {getenv("PQ_FLOOR_P1"), getenv("PQ_FLOOR_P2")};
        PGresult *res = sql ? PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0) : PQexec(conn, "SELECT 1");
        rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : 1;
        PQclear(res);
    }
    PQfinish(conn);
    return rc;
}
