"""The web mirror: a page that draws the wall from segment masks, and its frame stream."""
