"""The built-in dashboard: one HTML page, its static files, and server-side SVG charts."""
