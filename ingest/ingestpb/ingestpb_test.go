package ingestpb

import (
	"context"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestGeneratedCodeIsCurrent compiles zombi.proto and compares it with the
// descriptor compiled into zombi.pb.go, so that a .proto change without
// `go generate` fails here too, not only in CI's diff check.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{})}
	files, err := c.Compile(context.Background(), "zombi.proto")
	if err != nil {
		t.Fatal(err)
	}
	var fd protoreflect.FileDescriptor = files[0]
	if u, ok := fd.(interface {
		Unwrap() protoreflect.FileDescriptor
	}); ok {
		fd = u.Unwrap()
	}
	fromProto := protodesc.ToFileDescriptorProto(fd)
	generated := protodesc.ToFileDescriptorProto(File_zombi_proto)
	fromProto.SourceCodeInfo, generated.SourceCodeInfo = nil, nil
	if !proto.Equal(fromProto, generated) {
		t.Fatalf("zombi.pb.go does not match zombi.proto: run go generate ./ingest/ingestpb\nproto: %v\ngenerated: %v", fromProto, generated)
	}
}

func TestRoundTrip(t *testing.T) {
	in := &BulkWriteRequest{Records: []*BulkEvent{
		{Payload: []byte{0, 0xff}, Partition: 3, TimestampMs: 1700000000000, IdempotencyKey: "k", Headers: map[string]string{"a": "b"}},
		{},
	}}
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out BulkWriteRequest
	if err := proto.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, &out) {
		t.Fatalf("round trip: %v, want %v", &out, in)
	}
	// Field numbers are the wire contract with producers.
	if got := (&BulkEvent{Partition: 1}).ProtoReflect().Descriptor().Fields().ByName("partition").Number(); got != 2 {
		t.Errorf("BulkEvent.partition is field %d, want 2", got)
	}
	if got := (&Event{}).ProtoReflect().Descriptor().FullName(); got != "zombi.v1.Event" {
		t.Errorf("Event is %s", got)
	}
}
