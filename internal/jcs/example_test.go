package jcs_test

import (
	"crypto/sha256"
	"fmt"

	"github.com/writhq/writ/internal/jcs"
)

func ExampleCanonicalize() {
	in := []byte(`{
		"z": [1.0, 1e21, 0.0000001, -0],
		"a": "caf\u00e9 \u0007",
		"\ud83d\ude00": true
	}`)
	out, err := jcs.Canonicalize(in)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(out))
	fmt.Printf("%x\n", sha256.Sum256(out))

	_, err = jcs.Canonicalize([]byte(`{"a":1,"a":2}`))
	fmt.Println(err)
	// Output:
	// {"a":"café \u0007","z":[1,1e+21,1e-7,0],"😀":true}
	// b769030de2c48f0d48b49ab24d787fb6bd4bdec49fb6669e95615eaac27e5e18
	// jcs: duplicate object member name at offset 7
}
