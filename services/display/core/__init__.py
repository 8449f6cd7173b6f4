"""The pure core: font, layout, pacing, blocklist, frame. No I/O imports here."""
