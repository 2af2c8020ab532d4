#!/usr/bin/env python3
"""Creates the two queues in moto as the template does and prints their URLs:
moto-queues.py ENDPOINT  ->  "RETRY_QUEUE_URL DEAD_LETTER_QUEUE_URL" on one line.
maxReceiveCount is high here: tests drive receives directly and must never hit the redrive."""
import json
import sys

import boto3

sqs = boto3.client("sqs", endpoint_url=sys.argv[1])
dead = sqs.create_queue(QueueName="currents-dead-letter")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
retry = sqs.create_queue(
    QueueName="currents-retry",
    Attributes={
        "VisibilityTimeout": "360",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "500"}),
    },
)["QueueUrl"]
print(retry, dead)
