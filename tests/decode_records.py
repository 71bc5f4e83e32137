#!/usr/bin/env python3
"""Reads hookgate's Kafka records with independent libraries only, as a data
team's consumer would, and prints one JSON object per record.

  schema-registry: confluent-kafka's ProtobufDeserializer, which looks the
                   writer schema up in the registry by the id in each frame;
                   the message class is generated from proto/ by grpc_tools.
  cloudevents:     the CloudEvents Python SDK's Kafka binding (binary mode).

Usage: decode_records.py MODE BOOTSTRAP TOPIC COUNT [--registry URL --user USER:PASSWORD]
Used by tests/formats.rs; tests/run.sh installs the packages.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def consume(bootstrap, topic, count, timeout=30.0):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"decode-records-{uuid.uuid4()}",
        "enable.auto.commit": False,
    })
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    messages, deadline = [], time.time() + timeout
    while len(messages) < count and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            print(message.error(), file=sys.stderr)
            continue
        messages.append(message)
    consumer.close()
    return messages


def envelope_class():
    from grpc_tools import protoc

    out = tempfile.mkdtemp()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")
    status = protoc.main(["protoc", f"-I{root}", f"--python_out={out}", "hookgate/v1/envelope.proto"])
    if status != 0:
        sys.exit(f"protoc failed with {status}")
    sys.path.insert(0, out)
    from hookgate.v1 import envelope_pb2

    return envelope_pb2.WebhookEnvelope


def schema_registry(args, messages):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    conf = {"url": args.registry}
    if args.user:
        conf["basic.auth.user.info"] = args.user
    deserializer = ProtobufDeserializer(envelope_class(), {}, SchemaRegistryClient(conf))
    for message in messages:
        context = SerializationContext(message.topic(), MessageField.VALUE)
        envelope = deserializer(message.value(), context)
        yield {
            "topic": message.topic(),
            "id": envelope.id,
            "source": envelope.source,
            "event_type": envelope.event_type,
            "body": base64.b64encode(envelope.body).decode(),
            "dedup_key": envelope.dedup_key,
            "verified": envelope.verification.verified,
            "replay": envelope.replay,
        }


def cloudevents(args, messages):
    from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

    for message in messages:
        headers = {name: value for name, value in (message.headers() or [])}
        event = from_binary_event(KafkaMessage(headers=headers, key=message.key(), value=message.value()))
        attributes = event.get_attributes()
        data = event.get_data()
        yield {
            "topic": message.topic(),
            "attributes": {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in attributes.items()},
            "data": data if not isinstance(data, bytes) else base64.b64encode(data).decode(),
        }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["schema-registry", "cloudevents"])
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("count", type=int)
    parser.add_argument("--registry")
    parser.add_argument("--user")
    args = parser.parse_args()
    messages = consume(args.bootstrap, args.topic, args.count)
    decode = schema_registry if args.mode == "schema-registry" else cloudevents
    for record in decode(args, messages):
        print(json.dumps(record, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
