export { packageArtifact, serviceName, DEFAULT_NODE_FLAGS, DEFAULT_LIMITS, type PackageOptions, type PackageResult } from './package.js';
export { verifyArtifact, readArtifactManifest, entrypointCommand, hashTree, sha256File, ArtifactManifestSchema, MANIFEST_FILE, type ArtifactManifest, type VerifyResult, type VerifyProblem } from './manifest.js';
export { buildRuntimeBundle, findInstallRoot, type BundleResult, type Variant } from './bundle.js';
export {
  composeFile,
  dockerfileCpu,
  dockerfileGpu,
  kubernetesManifests,
  imageName,
  DEFAULT_BASE_IMAGE,
  DEFAULT_CUDA_IMAGE,
  DEFAULT_REDIS_IMAGE,
  DEFAULT_POSTGRES_IMAGE,
  IMAGE_ROOT,
  SERVICE_PORT,
  SERVICE_UID,
} from './templates.js';
export { smokeTestArtifact, type SmokeResult } from './smoke.js';
