"""The operations CLI (`genviral-relay`). Not part of any function: no handler imports it."""
