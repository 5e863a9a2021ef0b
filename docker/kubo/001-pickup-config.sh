#!/bin/sh
# Configures kubo for a pickup worker; run by the kubo image's entrypoint on every start, so changes to the
# task's environment apply on the next deploy. The image's shell is busybox ash.
set -eu

# The listen addresses below are the task's; the KUBO_*_ADDR(S) variables override them only where many nodes
# share one machine (the test suite, local mode).

# The RPC API and the gateway on loopback only: the worker sidecar shares the task's network namespace, and
# nothing else may drive this node.
ipfs config Addresses.API "${KUBO_API_ADDR:-/ip4/127.0.0.1/tcp/5001}"
ipfs config Addresses.Gateway "${KUBO_GATEWAY_ADDR:-/ip4/127.0.0.1/tcp/8080}"

# The swarm on port 4001, tcp and udp (QUIC, WebTransport, WebRTC): the task's security group opens exactly
# these, so origins and clients can dial the worker.
ipfs config --json Addresses.Swarm "${KUBO_SWARM_ADDRS:-[
  \"/ip4/0.0.0.0/tcp/4001\",
  \"/ip4/0.0.0.0/udp/4001/quic-v1\",
  \"/ip4/0.0.0.0/udp/4001/quic-v1/webtransport\",
  \"/ip4/0.0.0.0/udp/4001/webrtc-direct\"
]}"

# Fetch only: never announce or re-announce blocks. Workers hold content for minutes; the CARs are provided to
# the network from the destination bucket by the indexers.
ipfs config --json Provide.Enabled false
ipfs config Provide.DHT.Interval 0

# A DHT client (finds providers, does not serve DHT records), with delegated HTTP routing as well.
ipfs config Routing.Type autoclient

# Connection manager: above HIGH connections, trim down to LOW (connections younger than the grace period are
# kept). Bitswap fetches are faster with more peers; memory and file descriptors bound it.
ipfs config --json Swarm.ConnMgr.LowWater "${KUBO_CONNMGR_LOW_WATER:-100}"
ipfs config --json Swarm.ConnMgr.HighWater "${KUBO_CONNMGR_HIGH_WATER:-400}"
ipfs config Swarm.ConnMgr.GracePeriod 30s

# Nothing to discover on a datacenter LAN, and no certificate to obtain for a node that serves no browsers.
ipfs config --json Discovery.MDNS.Enabled false
ipfs config --json AutoTLS.Enabled false

# Never dial into the task's own networks: origins come from clients, and a name or a peer routing record can
# point anywhere. go-libp2p applies these filters to every dial after DNS resolution (and to inbound
# connections). The server profile (IPFS_PROFILE=server, applied at the first init only) filters private
# ranges but not loopback; this list adds loopback, "this network", site-local, multicast, and IPv4 ranges
# embedded in IPv6 (mapped, NAT64, 6to4), and is set on every start. The same ranges as core/origins.ts.
# KUBO_ALLOW_PRIVATE_DIALS=true lifts them where origins are on this machine by design: local mode and the
# test suite.
if [ "${KUBO_ALLOW_PRIVATE_DIALS:-false}" = "true" ]; then
  ipfs config --json Swarm.AddrFilters '[]'
else
  ipfs config --json Swarm.AddrFilters '[
    "/ip4/0.0.0.0/ipcidr/8",
    "/ip4/10.0.0.0/ipcidr/8",
    "/ip4/100.64.0.0/ipcidr/10",
    "/ip4/127.0.0.0/ipcidr/8",
    "/ip4/169.254.0.0/ipcidr/16",
    "/ip4/172.16.0.0/ipcidr/12",
    "/ip4/192.0.0.0/ipcidr/24",
    "/ip4/192.0.2.0/ipcidr/24",
    "/ip4/192.88.99.0/ipcidr/24",
    "/ip4/192.168.0.0/ipcidr/16",
    "/ip4/198.18.0.0/ipcidr/15",
    "/ip4/198.51.100.0/ipcidr/24",
    "/ip4/203.0.113.0/ipcidr/24",
    "/ip4/224.0.0.0/ipcidr/4",
    "/ip4/240.0.0.0/ipcidr/4",
    "/ip6/::/ipcidr/128",
    "/ip6/::1/ipcidr/128",
    "/ip6/::ffff:0:0/ipcidr/96",
    "/ip6/64:ff9b::a00:0/ipcidr/104",
    "/ip6/64:ff9b::7f00:0/ipcidr/104",
    "/ip6/64:ff9b::a9fe:0/ipcidr/112",
    "/ip6/64:ff9b::ac10:0/ipcidr/108",
    "/ip6/64:ff9b::c0a8:0/ipcidr/112",
    "/ip6/64:ff9b::6440:0/ipcidr/106",
    "/ip6/64:ff9b::/ipcidr/104",
    "/ip6/64:ff9b:1::/ipcidr/48",
    "/ip6/100::/ipcidr/64",
    "/ip6/2001::/ipcidr/32",
    "/ip6/2001:db8::/ipcidr/32",
    "/ip6/2002::/ipcidr/16",
    "/ip6/fc00::/ipcidr/7",
    "/ip6/fe80::/ipcidr/10",
    "/ip6/fec0::/ipcidr/10",
    "/ip6/ff00::/ipcidr/8"
  ]'
fi
