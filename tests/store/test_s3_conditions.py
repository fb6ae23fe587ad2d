"""The S3-compatible test server enforces the two conditional writes the protocol relies on."""

import boto3
import pytest
from botocore.exceptions import ClientError


def test_server_enforces_if_none_match_and_if_match(s3_endpoint: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="conditions")
    first = client.put_object(Bucket="conditions", Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as created_twice:
        client.put_object(Bucket="conditions", Key="k", Body=b"2", IfNoneMatch="*")
    assert created_twice.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as stale:
        client.put_object(Bucket="conditions", Key="k", Body=b"3", IfMatch='"0"')
    assert stale.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    client.put_object(Bucket="conditions", Key="k", Body=b"4", IfMatch=first["ETag"])
    assert client.get_object(Bucket="conditions", Key="k")["Body"].read() == b"4"
