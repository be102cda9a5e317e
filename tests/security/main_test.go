package security

import (
	"os"
	"testing"

	"github.com/zombi-db/zombi/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }
