package testenv

import "fmt"

// StartShared starts the Postgres cluster, the S3 server and MinIO for test
// processes that are not Go tests (the pytest engine suites) and for
// several Go test binaries to share. It returns the environment variables
// that point every fixture at them (ZOMBI_TEST_POSTGRES_URL,
// ZOMBI_TEST_S3_*, ZOMBI_TEST_MINIO_*). Stop them with StopPostgres and
// StopS3.
func StartShared() (map[string]string, error) {
	admin, err := pgStart()
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	_, srv, err := s3Start()
	if err != nil {
		StopPostgres()
		return nil, fmt.Errorf("S3 server: %w", err)
	}
	_, mio, err := minioStart()
	if err != nil {
		StopS3()
		StopPostgres()
		return nil, fmt.Errorf("MinIO: %w", err)
	}
	return map[string]string{
		EnvPostgresURL:    admin,
		EnvS3Endpoint:     srv.Endpoint,
		EnvS3AccessKey:    srv.AccessKey,
		EnvS3SecretKey:    srv.SecretKey,
		EnvS3Region:       srv.Region,
		EnvMinIOEndpoint:  mio.Endpoint,
		EnvMinIOAccessKey: mio.AccessKey,
		EnvMinIOSecretKey: mio.SecretKey,
	}, nil
}
