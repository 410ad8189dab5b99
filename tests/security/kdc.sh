#!/usr/bin/env bash
# A throwaway Kerberos realm for the tests, with Debian's MIT krb5-kdc: realm KAZOOTEST.ORG
# (the realm kazoo's GSSAPI tests expect), a KDC on a free local port, and keytabs for the
# server (zookeeper/127.0.0.1, and zookeeper/localhost, the name ZooKeeper's Java client asks
# for when it dials 127.0.0.1), a client (client) and the quorum (zkquorum/127.0.0.N).
#
#   tests/security/kdc.sh start <dir>   # prints the environment to eval: KRB5_CONFIG,
#                                       # KRB5_TEST_ENV (the keytabs), KRB5CCNAME, KDC_PID
#   tests/security/kdc.sh stop <dir>
set -euo pipefail

cmd=${1:?start or stop}
dir=$(mkdir -p "${2:?a directory}" && cd "$2" && pwd)
realm=KAZOOTEST.ORG

if [ "$cmd" = stop ]; then
    [ -f "$dir/kdc.pid" ] && kill "$(cat "$dir/kdc.pid")" 2>/dev/null || true
    exit 0
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/krb5.conf" <<EOF
[libdefaults]
    default_realm = $realm
    dns_lookup_realm = false
    dns_lookup_kdc = false
    rdns = false
    udp_preference_limit = 1
    default_ccache_name = FILE:$dir/ccache
[realms]
    $realm = {
        kdc = 127.0.0.1:$port
    }
EOF
cat >"$dir/kdc.conf" <<EOF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$port
    kdc_tcp_listen = 127.0.0.1:$port
[realms]
    $realm = {
        database_name = $dir/principal
        key_stash_file = $dir/stash
        acl_file = $dir/kadm5.acl
        max_life = 1h
        max_renewable_life = 1h
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }
[logging]
    kdc = FILE:$dir/kdc.log
EOF
: >"$dir/kadm5.acl"
export KRB5_CONFIG=$dir/krb5.conf KRB5_KDC_PROFILE=$dir/kdc.conf
kdb5_util create -s -r "$realm" -P "master-$$-$RANDOM" >"$dir/setup.log" 2>&1
for p in zookeeper/127.0.0.1 zookeeper/localhost client zkquorum/127.0.0.1 zkquorum/127.0.0.2 zkquorum/127.0.0.3; do
    kadmin.local -r "$realm" -q "addprinc -randkey $p@$realm" >>"$dir/setup.log" 2>&1
done
kadmin.local -r "$realm" -q "ktadd -k $dir/server.keytab zookeeper/127.0.0.1@$realm" >>"$dir/setup.log" 2>&1
kadmin.local -r "$realm" -q "ktadd -k $dir/server-localhost.keytab zookeeper/localhost@$realm" >>"$dir/setup.log" 2>&1
kadmin.local -r "$realm" -q "ktadd -k $dir/client.keytab client@$realm" >>"$dir/setup.log" 2>&1
for i in 1 2 3; do
    kadmin.local -r "$realm" -q "ktadd -k $dir/quorum$i.keytab zkquorum/127.0.0.$i@$realm" >>"$dir/setup.log" 2>&1
done
krb5kdc -n -P "$dir/kdc.pid" >>"$dir/kdc.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done
echo "$pid" >"$dir/kdc.pid"
echo "export KRB5_CONFIG=$dir/krb5.conf KRB5_TEST_ENV=$dir KRB5CCNAME=FILE:$dir/ccache KDC_PID=$pid"
