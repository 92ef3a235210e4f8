"""CyTube socket.io protocol: frame parsing (pure) and the connection process."""
