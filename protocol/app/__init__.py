"""protocol/app"""
