"""Shadow mode: the twin's own models beside a site, fed by what the site measures."""
