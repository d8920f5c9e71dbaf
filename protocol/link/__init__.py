"""protocol/link"""
