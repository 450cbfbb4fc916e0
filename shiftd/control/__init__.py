"""Control socket: newline-delimited JSON over a Unix stream socket."""
