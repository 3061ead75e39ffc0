#!/bin/sh
# tls_certs.sh DIR — throwaway TLS material for the TLS tests, made with the openssl
# command (never committed): a test CA, certificates it signs, and a few bad ones.
#   ca.pem            the test CA (ca.key)
#   server.pem/.key   CN=localhost, for DNS:localhost, IP:127.0.0.1, IP:::1
#   dnsonly.pem/.key  for DNS:localhost only (not for 127.0.0.1)
#   expired.pem/.key  server.key's name, expired
#   client.pem/.key   a client certificate (CN=alua client)
#   server-enc.key    server.key encrypted with the password "alua"
#   self.pem/.key     self-signed, for localhost and 127.0.0.1
#   other-ca.pem      an unrelated CA
set -e
dir=$1
[ -n "$dir" ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
cat > ext.cnf <<'CNF'
[server]
basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
[dnsonly]
basicConstraints=CA:FALSE
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost
[client]
basicConstraints=CA:FALSE
extendedKeyUsage=clientAuth
CNF
ca() { # ca NAME CN (req -x509 makes it a CA: basicConstraints critical CA:TRUE)
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" 2>/dev/null
}
sign() { # sign NAME CN EXTENSIONS DAYS
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
    -days "$4" -extfile ext.cnf -extensions "$3" 2>/dev/null
  rm -f "$1.csr"
}
ca ca "alua test CA"
ca other-ca "another CA"
sign server localhost server 2
sign dnsonly localhost dnsonly 2
sign client "alua client" client 2
sign expired localhost server -1
openssl pkey -in server.key -aes256 -passout pass:alua -out server-enc.key 2>/dev/null
key self.key
openssl req -x509 -new -key self.key -out self.pem -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
