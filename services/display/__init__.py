"""The display: subscribes to the mind's stream and shows its thoughts on the LED wall and the web mirror."""
