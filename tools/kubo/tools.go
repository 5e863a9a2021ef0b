//go:build tools

// Package tools pins the Go reference tools pickup's tests run against (scripts/install-tools.sh builds them).
// kubo v0.43.1 is built against go-libp2p v0.50.0 instead of the unpublished fork its own go.mod replaces
// go-libp2p with (the module proxy does not serve it); v0.50.0 carries the same quic-go and webtransport-go
// upgrade the fork was made for.
package tools

import (
	_ "github.com/ipfs/kubo/cmd/ipfs"
)
