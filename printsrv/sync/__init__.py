"""The kecamatan node: a server on SQLite that prints offline and store-and-forwards to its
kabupaten server (see docs/node.md). :mod:`protocol` is the wire format and request signing,
:mod:`server` the kabupaten side's services, :mod:`node` the node side's, :mod:`client` the
node's HTTP transport."""
