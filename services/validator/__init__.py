"""The validator service: static checks of a registered revision before any GPU sees it."""
