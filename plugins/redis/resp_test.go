package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func parse(data string) (reply, error) { return readReply(bufio.NewReader(strings.NewReader(data)), 0) }

func TestReadReply(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want reply
		err  bool
	}{
		"simple":         {in: "+PONG\r\n", want: reply{kind: '+', str: "PONG"}},
		"error":          {in: "-NOAUTH Authentication required.\r\n", want: reply{kind: '-', str: "NOAUTH Authentication required."}},
		"integer":        {in: ":-42\r\n", want: reply{kind: ':', n: -42}},
		"bulk":           {in: "$5\r\na\r\nbc\r\n", want: reply{kind: '$', str: "a\r\nbc"}},
		"null bulk":      {in: "$-1\r\n", want: reply{kind: '$', null: true}},
		"array":          {in: "*2\r\n$4\r\nport\r\n$1\r\n0\r\n", want: reply{kind: '*', elems: []reply{{kind: '$', str: "port"}, {kind: '$', str: "0"}}}},
		"bare LF":        {in: "+PONG\n", err: true},
		"short bulk":     {in: "$5\r\nab\r\n", err: true},
		"bulk no CRLF":   {in: "$2\r\nabcd", err: true},
		"huge bulk":      {in: "$99999999999\r\n", err: true},
		"negative array": {in: "*-2\r\n", err: true},
		"deep":           {in: strings.Repeat("*1\r\n", 10) + ":1\r\n", err: true},
		"TLS alert":      {in: "\x15\x03\x01\x00\x02\x02\x46", err: true},
		"empty":          {in: "", err: true},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := parse(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestConfigPairs(t *testing.T) {
	v, _ := parse("*4\r\n$4\r\nport\r\n$1\r\n0\r\n$8\r\ntls-port\r\n$4\r\n6380\r\n")
	m, err := configPairs(v)
	if err != nil || m["port"] != "0" || m["tls-port"] != "6380" || len(m) != 2 {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"*1\r\n$4\r\nport\r\n", "+OK\r\n", "*2\r\n:1\r\n$1\r\n0\r\n", "*2\r\n$4\r\nport\r\n$-1\r\n", "*-1\r\n"} {
		v, err := parse(bad)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := configPairs(v); err == nil {
			t.Errorf("configPairs(%q) = %v, want an error", bad, m)
		}
	}
}

// FuzzReadReply: whatever a server sends, the parser does not panic or
// run past its limits; what it accepts re-encodes to exactly the bytes it
// consumed (it invents nothing and drops nothing), and configPairs of an
// accepted reply either errors or holds one entry per distinct name.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"+PONG\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n",
		"*4\r\n$4\r\nport\r\n$1\r\n0\r\n$8\r\ntls-port\r\n$4\r\n6380\r\n", "*2\r\n*1\r\n:1\r\n$0\r\n\r\n", "\x15\x03\x03\x00\x02\x02\x28"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := bytes.NewReader(data)
		r := bufio.NewReader(src)
		v, err := readReply(r, 0)
		if err != nil {
			if !errors.Is(err, errProtocol) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		consumed := len(data) - src.Len() - r.Buffered()
		var b strings.Builder
		v.encode(&b)
		if b.String() != string(data[:consumed]) {
			t.Fatalf("re-encoded %q, consumed %q", b.String(), data[:consumed])
		}
		if m, err := configPairs(v); err == nil {
			names := map[string]bool{}
			for i := 0; i < len(v.elems); i += 2 {
				names[v.elems[i].str] = true
			}
			if len(m) != len(names) {
				t.Fatalf("configPairs: %d entries for %d names", len(m), len(names))
			}
		}
	})
}

func TestInfoField(t *testing.T) {
	info := "# Server\r\nredis_version:7.0.15\r\nconfig_file:/etc/redis/redis.conf\r\nexecutable:/usr/bin/redis-server\r\n"
	if v, ok := infoField(info, "config_file"); !ok || v != "/etc/redis/redis.conf" {
		t.Errorf("config_file = %q, %v", v, ok)
	}
	if v, ok := infoField("# Server\nconfig_file:\n", "config_file"); !ok || v != "" {
		t.Errorf("empty config_file = %q, %v", v, ok)
	}
	if _, ok := infoField("xconfig_file:/a\r\n", "config_file"); ok {
		t.Error("a longer name matched")
	}
}

// FuzzInfoField: a field found is the value of a line that says exactly
// name:value, and holds no line break (nothing of a neighbouring line).
func FuzzInfoField(f *testing.F) {
	f.Add("# Server\r\nconfig_file:/etc/redis/redis.conf\r\n", "config_file")
	f.Add("config_file:a:b\n\nconfig_file:c", "config_file")
	f.Add("config_file:\r0", "config_file") // a CR inside the value: garbled, not found
	f.Fuzz(func(t *testing.T, info, name string) {
		v, ok := infoField(info, name)
		if !ok {
			if v != "" {
				t.Fatalf("not found, but value %q", v)
			}
			return
		}
		if strings.ContainsAny(v, "\r\n") {
			t.Fatalf("value %q holds a line break", v)
		}
		if !strings.Contains("\n"+info+"\n", "\n"+name+":"+v) {
			t.Fatalf("%q: no line %q", info, name+":"+v)
		}
	})
}
