"""Small image generators of three families, trained here on the built-in real photographs (no
registry package ships generator weights), plus the autoencoder whose reconstructions train the
artifact expert. All work on ``float [B, 3, 32, 32]`` in [-1, 1], conditioned on the semantic
domain (an embedding of the domain id), and train in CPU minutes.

- ``vae``: convolutional VAE (latent 64); decoder: bilinear upsampling + 3x3 convolutions;
  loss ``||x - x_hat||^2 + beta KL(q(z|x) || N(0, I))``; samples ``dec(z, d)``, ``z ~ N(0, I)``.
- ``gan``: conditional DCGAN; generator: transposed convolutions with batch norm; discriminator
  with spectral norm and a projection term for the domain; non-saturating logistic loss.
- ``ddpm``: DDPM (Ho et al. 2020) with a small U-Net predicting the noise, cosine schedule
  (Nichol & Dhariwal 2021) with ``T`` steps, ``L = ||eps - eps_theta(sqrt(a_t) x + sqrt(1-a_t)
  eps, t, d)||^2``, ancestral sampling from the posterior ``q(x_{t-1} | x_t, x_0_hat)`` with
  ``x_0_hat`` clipped to [-1, 1] (Ho et al.'s ``clip_denoised``).
- ``ae``: deterministic convolutional autoencoder (8x8x8 bottleneck, nearest upsampling); its
  reconstructions of real images are the artifact expert's fakes (the paper uses a VAE's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm
from tqdm.auto import tqdm

from moe_zoo.core import InputError, get_logger

_log = get_logger(__name__)
FAMILIES = ("vae", "gan", "ddpm")


@dataclass(frozen=True)
class GeneratorSettings:
    """Training length and size of each generator (steps of batch ``batch``)."""

    steps: int = 400
    batch: int = 32
    lr: float = 2e-3
    ddpm_steps: int = 40


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                         nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(8, c_out), nn.SiLU())


class ConvVAE(nn.Module):
    def __init__(self, n_domains: int, latent: int = 64, width: int = 32) -> None:
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.SiLU(), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.SiLU(), nn.Flatten(), nn.Linear(4 * width * 16, 2 * latent))
        self.embed = nn.Embedding(n_domains, 16)
        self.project = nn.Linear(latent + 16, 4 * width * 16)
        self.decoder = nn.Sequential(nn.Unflatten(1, (4 * width, 4, 4)), _up(4 * width, 2 * width),
                                     _up(2 * width, width), _up(width, width), nn.Conv2d(width, 3, 3, padding=1),
                                     nn.Tanh())

    def decode(self, z: Tensor, domains: Tensor) -> Tensor:
        return self.decoder(self.project(torch.cat([z, self.embed(domains)], 1)))

    def loss(self, x: Tensor, domains: Tensor, beta: float = 0.5) -> Tensor:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = self.decode(z, domains)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
        return (recon - x).pow(2).sum((1, 2, 3)).mean() + beta * kl

    @torch.no_grad()
    def sample(self, domains: Tensor, generator: torch.Generator) -> Tensor:
        z = torch.randn(len(domains), self.latent, generator=generator)
        return self.decode(z, domains)


class GANGenerator(nn.Module):
    def __init__(self, n_domains: int, latent: int = 64, width: int = 64) -> None:
        super().__init__()
        self.latent = latent
        self.embed = nn.Embedding(n_domains, 16)
        self.project = nn.Sequential(nn.Linear(latent + 16, 4 * width * 16), nn.Unflatten(1, (4 * width, 4, 4)),
                                     nn.BatchNorm2d(4 * width), nn.ReLU())
        layers: list[nn.Module] = []
        for c_in, c_out in ((4 * width, 2 * width), (2 * width, width)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z: Tensor, domains: Tensor) -> Tensor:
        return self.body(self.project(torch.cat([z, self.embed(domains)], 1)))

    @torch.no_grad()
    def sample(self, domains: Tensor, generator: torch.Generator) -> Tensor:
        return self(torch.randn(len(domains), self.latent, generator=generator), domains)


class GANDiscriminator(nn.Module):
    def __init__(self, n_domains: int, width: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            spectral_norm(nn.Conv2d(3, width, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * width, 4 * width, 4, 2, 1)), nn.LeakyReLU(0.2), nn.Flatten())
        self.out = spectral_norm(nn.Linear(4 * width * 16, 1))
        self.embed = spectral_norm(nn.Embedding(n_domains, 4 * width * 16))

    def forward(self, x: Tensor, domains: Tensor) -> Tensor:
        h = self.body(x)
        return self.out(h).squeeze(1) + (self.embed(domains) * h).sum(1)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, d_emb: int) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.GroupNorm(8, c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.emb = nn.Linear(d_emb, c_out)
        self.block2 = nn.Sequential(nn.GroupNorm(8, c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.block1(x) + self.emb(emb)[:, :, None, None]
        return self.block2(h) + self.skip(x)


class TinyUNet(nn.Module):
    """Noise predictor: 32x32 stem, residual blocks at 16x16 and 8x8 with a skip, time and domain
    embeddings added in every block (kept small so that training and sampling take CPU minutes)."""

    def __init__(self, n_domains: int, width: int = 32) -> None:
        super().__init__()
        d_emb = 2 * width
        self.width = width
        self.time = nn.Sequential(nn.Linear(width, d_emb), nn.SiLU(), nn.Linear(d_emb, d_emb))
        self.domain = nn.Embedding(n_domains, d_emb)
        self.stem = nn.Sequential(nn.Conv2d(3, width // 2, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(width // 2, width, 4, 2, 1))
        self.down = _ResBlock(width, width, d_emb)
        self.pool = nn.Conv2d(width, 2 * width, 3, 2, 1)
        self.mid = _ResBlock(2 * width, 2 * width, d_emb)
        self.up = _ResBlock(3 * width, width, d_emb)
        self.out = nn.Sequential(nn.GroupNorm(8, width), nn.SiLU(), nn.ConvTranspose2d(width, width // 2, 4, 2, 1),
                                 nn.SiLU(), nn.Conv2d(width // 2, 3, 3, padding=1))

    def _time_features(self, t: Tensor) -> Tensor:
        half = self.width // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
        angles = t.float()[:, None] * freqs[None]
        return torch.cat([angles.sin(), angles.cos()], 1)

    def forward(self, x: Tensor, t: Tensor, domains: Tensor) -> Tensor:
        emb = self.time(self._time_features(t)) + self.domain(domains)
        skip = self.down(self.stem(x), emb)
        h = self.mid(self.pool(skip), emb)
        h = self.up(torch.cat([F.interpolate(h, scale_factor=2.0), skip], 1), emb)
        return self.out(h)


class DDPM(nn.Module):
    def __init__(self, n_domains: int, steps: int = 40) -> None:
        super().__init__()
        self.net = TinyUNet(n_domains)
        s = 0.008
        grid = torch.linspace(0, steps, steps + 1) / steps
        alpha_bar = torch.cos((grid + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = alpha_bar / alpha_bar[0]
        betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
        self.register_buffer("betas", betas)
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0))

    def loss(self, x: Tensor, domains: Tensor) -> Tensor:
        t = torch.randint(0, len(self.betas), (len(x),))
        noise = torch.randn_like(x)
        a = self.alpha_bar[t][:, None, None, None]
        return F.mse_loss(self.net(a.sqrt() * x + (1 - a).sqrt() * noise, t, domains), noise)

    @torch.no_grad()
    def sample(self, domains: Tensor, generator: torch.Generator) -> Tensor:
        x = torch.randn(len(domains), 3, 32, 32, generator=generator)
        for step in reversed(range(len(self.betas))):
            t = torch.full((len(x),), step, dtype=torch.long)
            beta, a_bar = self.betas[step], self.alpha_bar[step]
            a_prev = self.alpha_bar[step - 1] if step else a_bar.new_ones(())
            x0 = ((x - (1 - a_bar).sqrt() * self.net(x, t, domains)) / a_bar.sqrt()).clamp(-1, 1)
            x = (a_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - a_prev) * x) / (1 - a_bar)
            if step:
                x = x + (beta * (1 - a_prev) / (1 - a_bar)).sqrt() * torch.randn(x.shape, generator=generator)
        return x.clamp(-1, 1)


class ReconAE(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1), nn.SiLU(), nn.Conv2d(width, 2 * width, 4, 2, 1),
                                     nn.SiLU(), nn.Conv2d(2 * width, 2 * width, 4, 2, 1), nn.SiLU(),
                                     nn.Conv2d(2 * width, 8, 1))
        self.decoder = nn.Sequential(nn.Conv2d(8, 2 * width, 3, 1, 1), nn.SiLU(), nn.Upsample(scale_factor=2.0),
                                     nn.Conv2d(2 * width, width, 3, 1, 1), nn.SiLU(), nn.Upsample(scale_factor=2.0),
                                     nn.Conv2d(width, width, 3, 1, 1), nn.SiLU(), nn.Conv2d(width, 3, 3, 1, 1),
                                     nn.Tanh())

    def loss(self, x: Tensor, domains: Tensor) -> Tensor:
        return F.l1_loss(self.decoder(self.encoder(x)), x)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


def _batches(images: Tensor, domains: Tensor, settings: GeneratorSettings, generator: torch.Generator):
    for _ in range(settings.steps):
        idx = torch.randint(0, len(images), (settings.batch,), generator=generator)
        x = images[idx]
        flip = torch.rand(len(x), generator=generator) < 0.5
        yield torch.where(flip[:, None, None, None], x.flip(-1), x), domains[idx]


def train_generator(family: str, images: Tensor, domains: Tensor, n_domains: int, settings: GeneratorSettings,
                    seed: int = 0) -> nn.Module:
    """Train a ``vae``, ``gan``, ``ddpm`` or ``ae`` on ``images`` (``float [N, 3, 32, 32]`` in [-1, 1])."""
    if images.shape[1:] != (3, 32, 32):
        raise InputError(f"generators train on [N, 3, 32, 32] images, got {tuple(images.shape)}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    batches = _batches(images, domains, settings, generator)
    progress = dict(total=settings.steps, desc=f"train {family}", leave=False, mininterval=5)
    if family == "gan":
        return _train_gan(batches, n_domains, settings, progress)
    model = {"vae": lambda: ConvVAE(n_domains), "ddpm": lambda: DDPM(n_domains, settings.ddpm_steps),
             "ae": ReconAE}.get(family)
    if model is None:
        raise InputError(f"unknown generator family {family!r}: expected one of {(*FAMILIES, 'ae')}")
    model = model()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.steps)
    for x, d in tqdm(batches, **progress):
        loss = model.loss(x, d)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    _log.info("%s trained: last batch loss %.4f", family, float(loss))
    return model.eval()


def _train_gan(batches, n_domains: int, settings: GeneratorSettings, progress: dict) -> GANGenerator:
    g, d = GANGenerator(n_domains), GANDiscriminator(n_domains)
    opt_g = torch.optim.Adam(g.parameters(), lr=settings.lr / 4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=settings.lr / 4, betas=(0.5, 0.999))
    for x, dom in tqdm(batches, **progress):
        fake = g(torch.randn(len(x), g.latent), dom)
        loss_d = F.softplus(-d(x, dom)).mean() + F.softplus(d(fake.detach(), dom)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-d(fake, dom)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    _log.info("gan trained: last D loss %.3f, G loss %.3f", float(loss_d), float(loss_g))
    return g.eval()


def sample(model: nn.Module, domains: Tensor, seed: int, batch: int = 200) -> Tensor:
    """Generated images for the given domain ids, ``float [N, 3, 32, 32]`` in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    parts = [model.sample(domains[i:i + batch], generator)
             for i in tqdm(range(0, len(domains), batch), desc="sample", leave=False, mininterval=5)]
    return torch.cat(parts).clamp(-1, 1)
