"""Driving a real browser (headless Chromium) from the integration tests."""
