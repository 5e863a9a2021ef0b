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
