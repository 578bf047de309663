"""HTTP to webhook endpoints: the system resolver and the sender that connects to the address it is given."""
