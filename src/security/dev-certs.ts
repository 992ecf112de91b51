// The development CA of `lockstep certs`: an ECDSA P-256 CA and, per node id, a certificate it
// signs (CN = the id, SANs for the hosts peers dial it by, server and client use), as PEM text.
// Pure crypto: no files here (src/cli/certs.ts writes them).
//
// X.509 is built with @peculiar/x509 on Node's WebCrypto, not by running `openssl`: the slim Debian
// images (deploy/Dockerfile's node:20-bookworm-slim) and a fresh CI machine need not have the
// openssl command, and an npm dependency installs the same everywhere. Its dependency tsyringe
// needs the Reflect metadata API, so this module, and only the commands that import it (certs,
// up --tls), load the reflect-metadata polyfill; node and control processes never do.
import 'reflect-metadata';
import { X509Certificate as NodeX509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** A development CA lives long; the node certificates it signs get --days, never past the CA. */
export const caValidityDays = 3650;
/** notBefore is set this far back, so a peer whose clock is a little behind accepts it. */
const clockSkewAllowanceMs = 5 * 60_000;
const dayMs = 86_400_000;
const serialBytes = 16;
const caCommonName = 'Lockstep development CA';

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface NodeCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notAfter: Date;
}

/** A CA in dev-certs' own terms: its certificate and a key that signs. */
export interface DevCa {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certificate: x509.X509Certificate;
  readonly signingKey: CryptoKey;
}

/** A CA file pair that dev-certs cannot reuse; the message says why, never what the key is. */
export class DevCaError extends Error {}

export async function createDevCa(now: Date): Promise<DevCa> {
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${caCommonName}`,
    notBefore: new Date(now.getTime() - clockSkewAllowanceMs),
    notAfter: new Date(now.getTime() + caValidityDays * dayMs),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: certificate.toString('pem'), keyPem: await keyPem(keys.privateKey), certificate, signingKey: keys.privateKey };
}

/** The CA of an earlier run, checked: a CA certificate, its own key, ECDSA P-256, not expired. */
export async function loadDevCa(certPem: string, keyPemText: string, now: Date): Promise<DevCa> {
  let nodeCertificate: NodeX509Certificate;
  try {
    nodeCertificate = new NodeX509Certificate(certPem);
  } catch {
    throw new DevCaError('ca.pem is not a PEM certificate');
  }
  if (!nodeCertificate.ca) throw new DevCaError('ca.pem is not a CA certificate');
  if (now > new Date(nodeCertificate.validTo)) throw new DevCaError(`ca.pem expired on ${nodeCertificate.validTo}`);
  let der: Buffer;
  try {
    const key = createPrivateKey(keyPemText);
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new DevCaError('ca-key.pem is not an ECDSA P-256 key (lockstep certs reuses only a CA it made)');
    if (!nodeCertificate.checkPrivateKey(key)) throw new DevCaError('ca-key.pem is not the key of ca.pem');
    der = key.export({ type: 'pkcs8', format: 'der' });
  } catch (error) {
    if (error instanceof DevCaError) throw error;
    throw new DevCaError('ca-key.pem is not a PEM private key');
  }
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']);
  return { certPem, keyPem: keyPemText, certificate: new x509.X509Certificate(certPem), signingKey };
}

/** A certificate for node `id`, signed by `ca`, usable as a TLS server and a TLS client; its
 *  SANs are `hosts` (IP addresses as IP entries, the rest as DNS names). It ends no later than
 *  the CA does. */
export async function issueNodeCertificate(ca: DevCa, id: string, hosts: readonly string[], days: number, now: Date): Promise<NodeCertificate> {
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const notAfter = new Date(Math.min(now.getTime() + days * dayMs, ca.certificate.notAfter.getTime()));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${id}`,
    issuer: ca.certificate.subjectName,
    notBefore: new Date(now.getTime() - clockSkewAllowanceMs),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(hosts.map((host) => ({ type: isIP(host) === 0 ? ('dns' as const) : ('ip' as const), value: host }))),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
    ],
  });
  return { certPem: certificate.toString('pem'), keyPem: await keyPem(keys.privateKey), notAfter };
}

async function keyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** Random and positive (the top bit clear), as RFC 5280 asks of a serial number. */
function serialNumber(): string {
  const bytes = randomBytes(serialBytes);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString('hex');
}
