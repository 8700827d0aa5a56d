"""bifrost-gitops: Bifrost integrations managed as code."""

__version__ = "0.1.0"
