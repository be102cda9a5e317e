// Command protoc is the part of protoc that `go generate` needs, in Go: it
// compiles .proto files with github.com/bufbuild/protocompile and runs a
// protoc plugin on them through the standard plugin protocol (a
// CodeGeneratorRequest on the plugin's stdin, a CodeGeneratorResponse on its
// stdout), then writes the files the plugin returns.
//
// Usage:
//
//	go run ./internal/protoc -plugin "go tool protoc-gen-go" -param paths=source_relative -out . a.proto ...
//
// Files are named relative to the current directory, which is also the only
// import path (plus the well-known google/protobuf/*.proto files). The output
// depends only on the inputs and the plugin, so generation is reproducible.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	plugin := flag.String("plugin", "", "plugin command line, split on spaces (e.g. \"go tool protoc-gen-go\")")
	param := flag.String("param", "", "parameter passed to the plugin (like protoc's --go_opt)")
	out := flag.String("out", ".", "directory to write generated files to")
	flag.Parse()
	if *plugin == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: protoc -plugin CMD [-param P] [-out DIR] file.proto...")
		os.Exit(2)
	}
	if err := run(strings.Fields(*plugin), *param, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "protoc:", err)
		os.Exit(1)
	}
}

func run(plugin []string, param, out string, files []string) error {
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			ImportPaths: []string{"."},
		}),
		// Keep comments so the generated code carries them.
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	compiled, err := c.Compile(context.Background(), files...)
	if err != nil {
		return err
	}

	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: files}
	if param != "" {
		req.Parameter = proto.String(param)
	}
	// ProtoFile lists every file the generated ones refer to, dependencies
	// before the files that import them.
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(f))
	}
	for _, f := range compiled {
		add(unwrap(f))
	}

	in, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	cmd := exec.Command(goTool(plugin[0]), plugin[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	outBytes, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("plugin %q: %w", strings.Join(plugin, " "), err)
	}
	var resp pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(outBytes, &resp); err != nil {
		return fmt.Errorf("plugin %q: bad response: %w", strings.Join(plugin, " "), err)
	}
	if resp.Error != nil {
		return fmt.Errorf("plugin %q: %s", strings.Join(plugin, " "), resp.GetError())
	}
	for _, f := range resp.File {
		if f.InsertionPoint != nil {
			return fmt.Errorf("plugin %q: insertion points are not supported", strings.Join(plugin, " "))
		}
		name := filepath.FromSlash(f.GetName())
		if !filepath.IsLocal(name) {
			return fmt.Errorf("plugin %q: output file %q is outside the output directory", strings.Join(plugin, " "), f.GetName())
		}
		path := filepath.Join(out, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(f.GetContent()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// unwrap returns the plain descriptor of a compiled file.
func unwrap(f linker.File) protoreflect.FileDescriptor {
	if u, ok := f.(interface {
		Unwrap() protoreflect.FileDescriptor
	}); ok {
		return u.Unwrap()
	}
	return f
}

// goTool resolves "go" to the toolchain running `go generate` (which sets
// $GOROOT), so the plugin is built by the same Go.
func goTool(name string) string {
	if name == "go" {
		if root := os.Getenv("GOROOT"); root != "" {
			return filepath.Join(root, "bin", "go")
		}
	}
	return name
}
