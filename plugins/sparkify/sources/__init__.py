"""The bucket: listing objects with their versions and reading them, a local folder or S3; decompression,
and where the JSON records are in an object's bytes.
"""
