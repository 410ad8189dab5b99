/* The ZooKeeper C client (Debian's libzookeeper-mt) against a server: handshake, every common
 * synchronous call, a watch, an ephemeral, a multi, ACLs and auth. Exits non-zero on the first
 * result that differs from what ZooKeeper 3.8 returns. Usage: smoke host:port */
#define THREADED /* the synchronous API lives in the multi-threaded library */
#include <zookeeper/zookeeper.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int events = 0;
static char last_path[256];

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)ctx;
    if (type == ZOO_CHANGED_EVENT || type == ZOO_CREATED_EVENT || type == ZOO_DELETED_EVENT) {
        events++;
        snprintf(last_path, sizeof last_path, "%s", path);
    }
    (void)state;
}

#define EXPECT(what, got, want) do { int g_ = (got); if (g_ != (want)) { \
    fprintf(stderr, "FAIL %s: got %d want %d\n", what, g_, (want)); return 1; } \
    printf("ok %s\n", what); } while (0)

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: smoke host:port\n"); return 2; }
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
    zhandle_t *zh = zookeeper_init(argv[1], watcher, 10000, 0, 0, 0);
    if (!zh) { perror("zookeeper_init"); return 1; }
    for (int i = 0; i < 100 && zoo_state(zh) != ZOO_CONNECTED_STATE; i++) usleep(50000);
    EXPECT("connected", zoo_state(zh), ZOO_CONNECTED_STATE);

    char root[64];
    snprintf(root, sizeof root, "/c%d", (int)getpid());
    char buf[512];
    EXPECT("create", zoo_create(zh, root, "hello", 5, &ZOO_OPEN_ACL_UNSAFE, 0, buf, sizeof buf), ZOK);
    EXPECT("create exists", zoo_create(zh, root, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, 0, 0), ZNODEEXISTS);
    char seqp[128];
    snprintf(seqp, sizeof seqp, "%s/s-", root);
    EXPECT("create sequential", zoo_create(zh, seqp, 0, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE | ZOO_EPHEMERAL, buf, sizeof buf), ZOK);
    char want[160];
    snprintf(want, sizeof want, "%s/s-0000000000", root);
    EXPECT("sequential suffix", strcmp(buf, want), 0);

    struct Stat st;
    int len = sizeof buf;
    EXPECT("get with watch", zoo_get(zh, root, 1, buf, &len, &st), ZOK);
    EXPECT("get data", len == 5 && memcmp(buf, "hello", 5) == 0, 1);
    EXPECT("numChildren", st.numChildren, 1);
    EXPECT("set", zoo_set(zh, root, "bye", 3, st.version), ZOK);
    EXPECT("set bad version", zoo_set(zh, root, "bye", 3, 99), ZBADVERSION);
    for (int i = 0; i < 40 && events == 0; i++) usleep(50000);
    EXPECT("watch fired", events, 1);
    EXPECT("watch path", strcmp(last_path, root), 0);

    struct String_vector kids;
    EXPECT("get children", zoo_get_children(zh, root, 0, &kids), ZOK);
    EXPECT("children count", kids.count, 1);
    deallocate_String_vector(&kids);
    EXPECT("exists missing", zoo_exists(zh, "/no/such", 0, &st), ZNONODE);
    EXPECT("delete not empty", zoo_delete(zh, root, -1), ZNOTEMPTY);
    EXPECT("delete reserved", zoo_delete(zh, "/zookeeper", -1), ZBADARGUMENTS);

    /* multi: create then fail on a check: nothing applied, per-op results */
    zoo_op_t ops[2];
    zoo_op_result_t res[2];
    char p2[128];
    snprintf(p2, sizeof p2, "%s/m", root);
    zoo_create_op_init(&ops[0], p2, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, 0, 0);
    zoo_check_op_init(&ops[1], root, 12345);
    EXPECT("failed multi", zoo_multi(zh, 2, ops, res), ZBADVERSION);
    EXPECT("multi op 0 rolled back", res[0].err, ZOK);
    EXPECT("multi op 1 error", res[1].err, ZBADVERSION);
    EXPECT("multi applied nothing", zoo_exists(zh, p2, 0, &st), ZNONODE);

    /* ACL: digest-only node, unreadable without auth */
    char secret[128];
    snprintf(secret, sizeof secret, "%s/secret", root);
    struct ACL acl = {ZOO_PERM_ALL, {"digest", "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ="}};
    struct ACL_vector av = {1, &acl};
    EXPECT("create with digest ACL", zoo_create(zh, secret, "s", 1, &av, 0, 0, 0), ZOK);
    len = sizeof buf;
    EXPECT("read without auth", zoo_get(zh, secret, 0, buf, &len, &st), ZNOAUTH);
    EXPECT("add auth", zoo_add_auth(zh, "digest", "u:p", 3, 0, 0), ZOK);
    usleep(200000);
    len = sizeof buf;
    EXPECT("read with auth", zoo_get(zh, secret, 0, buf, &len, &st), ZOK);

    EXPECT("close", zookeeper_close(zh), ZOK);
    printf("C client: all checks passed\n");
    return 0;
}
