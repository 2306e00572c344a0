"""TLS for everything that crosses the network: a small CA and one certificate per node.

* :mod:`wizard.tls.certs`: generate a CA and node certificates with ``cryptography``; verify a certificate
  against CAs; read expiry dates.  Pure functions on PEM bytes.
* :mod:`wizard.tls.material`: the material of one cluster on the operator's machine (generated once and
  kept with mode 0600, or the operator's own files named in the profile's ``tls`` section).
* :mod:`wizard.tls.options`: where the files go on the nodes and the options that name them
  (Galera ``socket.ssl_*``, garbd, mariabackup SST, ``[mysqld] ssl_*``).
"""
