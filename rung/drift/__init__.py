"""Drift monitoring: is recent traffic (inputs, routing, quality) unlike a reference window?"""
