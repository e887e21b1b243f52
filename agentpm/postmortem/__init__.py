"""postmortem"""
