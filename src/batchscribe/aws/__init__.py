"""The AWS boundary: one factory of boto3 sessions and clients (`clients`), one translation of
botocore's errors by code (`errors`) into one exception tree (`exceptions`). The event publisher
and the AWS tools (`batchscribe.infra`) build every client here."""
