"""The notice outbox: documents about no post (`account.*`, `relay.*`), committed with the relay state that produced
them, then published to every target and the feed, under the same id until each has taken them."""
