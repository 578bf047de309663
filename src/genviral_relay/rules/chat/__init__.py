"""Chat deliveries: an event written for people, one message per event, in Slack's, Discord's or Teams' shape.

`message.py` says what a person reads about each event type (service-neutral, unescaped); `slack.py`, `discord.py`
and `teams.py` write that into each service's payload, escaping every piece of someone else's text for that service
(`text.py`) and holding the service's limits for any input; `formats.py` picks a URL's format and its default pace;
`answers.py` reads what the service answered. Pure: no I/O, no clock.
"""
