package sqlstore_test

const childEnv = "APITOKEN_SQLSTORE_CRASH_CHILD"

func crashChild(mode string) int { return 2 }
