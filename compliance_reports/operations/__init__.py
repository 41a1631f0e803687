"""Operating the deployment: health checks (`doctor`) and retention of stored files."""
