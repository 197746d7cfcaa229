// The photo with what the pipeline found drawn over it in the page, each in a layer of its own
// that a checkbox shows or hides: the pose skeleton, the person's box and the clothing. Drawn
// as the server's overlay draws them (vision/overlay.py): same bones, same colours.

const SVG = "http://www.w3.org/2000/svg";

// MediaPipe's POSE_CONNECTIONS, by landmark name (the list vision/overlay.py draws).
const POSE_CONNECTIONS = [
  ["nose", "left_eye_inner"], ["left_eye_inner", "left_eye"], ["left_eye", "left_eye_outer"],
  ["left_eye_outer", "left_ear"], ["nose", "right_eye_inner"],
  ["right_eye_inner", "right_eye"], ["right_eye", "right_eye_outer"],
  ["right_eye_outer", "right_ear"], ["mouth_left", "mouth_right"],
  ["left_shoulder", "right_shoulder"], ["left_shoulder", "left_elbow"],
  ["left_elbow", "left_wrist"], ["left_wrist", "left_pinky"], ["left_wrist", "left_index"],
  ["left_wrist", "left_thumb"], ["left_pinky", "left_index"],
  ["right_shoulder", "right_elbow"], ["right_elbow", "right_wrist"],
  ["right_wrist", "right_pinky"], ["right_wrist", "right_index"],
  ["right_wrist", "right_thumb"], ["right_pinky", "right_index"],
  ["left_shoulder", "left_hip"], ["right_shoulder", "right_hip"], ["left_hip", "right_hip"],
  ["left_hip", "left_knee"], ["right_hip", "right_knee"], ["left_knee", "left_ankle"],
  ["right_knee", "right_ankle"], ["left_ankle", "left_heel"], ["right_ankle", "right_heel"],
  ["left_heel", "left_foot_index"], ["right_heel", "right_foot_index"],
  ["left_ankle", "left_foot_index"], ["right_ankle", "right_foot_index"],
];
// Below this MediaPipe is guessing a landmark (vision/types.py, VISIBLE): no dot, no bone.
const VISIBLE = 0.5;
// RGBA of the clothing: a see-through tint, and its edge drawn solid.
const CLOTHING_TINT = [224, 64, 251, 64];
const CLOTHING_EDGE = [224, 64, 251, 255];

const side = (name) =>
  name.startsWith("left_") ? "left" : name.startsWith("right_") ? "right" : "mid";

function svgElement(tag, attributes) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  return element;
}

function skeleton(keypoints, dotRadius) {
  const seen = new Map(
    keypoints
      .filter((point) => point.in_frame && point.visibility >= VISIBLE)
      .map((point) => [point.name, point]),
  );
  const group = svgElement("g", { class: "layer skeleton" });
  const bones = POSE_CONNECTIONS.filter(([a, b]) => seen.has(a) && seen.has(b));
  for (const [a, b] of bones) {
    const [start, end] = [seen.get(a), seen.get(b)];
    const colour = side(a) === side(b) ? side(a) : "mid";
    const ends = { x1: start.x, y1: start.y, x2: end.x, y2: end.y };
    group.append(svgElement("line", { ...ends, class: `bone ${colour}` }));
  }
  for (const point of seen.values()) {
    const centre = { cx: point.x, cy: point.y, r: dotRadius };
    group.append(svgElement("circle", { ...centre, class: `joint ${side(point.name)}` }));
  }
  return group;
}

function personBox(bbox) {
  const group = svgElement("g", { class: "layer person-box" });
  const { x, y, width, height } = bbox;
  group.append(svgElement("rect", { x, y, width, height }));
  return group;
}

// The clothing mask (a greyscale PNG, nonzero = clothing) as a tinted layer with a solid edge,
// the edge thickened so it still shows once the photo is scaled down to the card.
async function paintClothing(canvas, maskUrl) {
  const response = await fetch(maskUrl);
  if (!response.ok) throw new Error(`clothing mask: storage answered ${response.status}`);
  const mask = await createImageBitmap(await response.blob());
  const { width, height } = mask;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  context.drawImage(mask, 0, 0);
  const pixels = context.getImageData(0, 0, width, height);
  const inside = new Uint8Array(width * height);
  for (let i = 0; i < inside.length; i += 1) inside[i] = pixels.data[i * 4] > 127 ? 1 : 0;
  const edgeRadius = Math.ceil(Math.max(width, height) / 400);
  const edge = thickened(edgeOf(inside, width, height), width, height, edgeRadius);
  for (let i = 0; i < inside.length; i += 1) {
    const colour = edge[i] ? CLOTHING_EDGE : inside[i] ? CLOTHING_TINT : [0, 0, 0, 0];
    pixels.data.set(colour, i * 4);
  }
  context.putImageData(pixels, 0, 0);
}

// Clothing pixels with a neighbour outside the clothing.
function edgeOf(inside, width, height) {
  const edge = new Uint8Array(inside.length);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = y * width + x;
      if (!inside[i]) continue;
      const left = x > 0 && inside[i - 1];
      const right = x < width - 1 && inside[i + 1];
      const up = y > 0 && inside[i - width];
      const down = y < height - 1 && inside[i + width];
      edge[i] = left && right && up && down ? 0 : 1;
    }
  }
  return edge;
}

// `marks` grown by `radius` pixels each way: a pass along the rows, then one down the columns.
function thickened(marks, width, height, radius) {
  const alongRows = { lines: height, lineStep: width, length: width, step: 1 };
  const downColumns = { lines: width, lineStep: 1, length: height, step: width };
  return grownLines(grownLines(marks, alongRows, radius), downColumns, radius);
}

function grownLines(marks, { lines, lineStep, length, step }, radius) {
  const grown = new Uint8Array(marks.length);
  for (let line = 0; line < lines; line += 1) {
    const at = (k) => line * lineStep + k * step;
    // Distance to the nearest mark before, then after, each pixel of the line.
    for (let k = 0, last = -Infinity; k < length; k += 1) {
      if (marks[at(k)]) last = k;
      if (k - last <= radius) grown[at(k)] = 1;
    }
    for (let k = length - 1, next = Infinity; k >= 0; k -= 1) {
      if (marks[at(k)]) next = k;
      if (next - k <= radius) grown[at(k)] = 1;
    }
  }
  return grown;
}

const LAYER_WORDS = {
  skeleton: "the pose skeleton",
  box: "the person's box",
  clothing: "the clothing outlined",
};

// Fills the completed view's `.annotated-photo` figure for `result`: the plain working image,
// the layers over it, and a checkbox per layer (hidden when the result has no data for it).
export function showAnnotatedPhoto(figure, result, name) {
  const { downloads, person } = result;
  const photo = figure.querySelector(".photo");
  photo.src = downloads.image.url;
  const { width, height } = result.image ?? { width: 0, height: 0 };

  // The drawing uses the photo's pixels as its units and stretches with the photo.
  if (width && height) {
    figure.querySelector(".layered").style.setProperty("--aspect", width / height);
  }
  const drawing = figure.querySelector(".drawing");
  drawing.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const layers = {};
  const toggles = [...figure.querySelectorAll("input[data-layer]")];
  // The photo's description names the layers shown; a checkbox goes with its layer's data.
  const describe = () => {
    const shown = toggles
      .filter((toggle) => toggle.checked && layers[toggle.dataset.layer])
      .map((toggle) => LAYER_WORDS[toggle.dataset.layer]);
    photo.alt = shown.length ? `${name} with ${shown.join(", ")}` : name;
    for (const toggle of toggles) toggle.closest("label").hidden = !layers[toggle.dataset.layer];
    figure.querySelector(".layer-toggles").hidden = Object.keys(layers).length === 0;
  };

  if (person && width && height) {
    layers.skeleton = skeleton(person.keypoints, Math.max(width, height) / 160);
    layers.box = personBox(person.bbox);
    drawing.append(layers.box, layers.skeleton);
  }
  if (downloads.clothing_mask) {
    layers.clothing = figure.querySelector(".clothing");
    paintClothing(layers.clothing, downloads.clothing_mask.url).catch(() => {
      delete layers.clothing; // nothing to show, so nothing to switch
      describe();
    });
  }
  for (const toggle of toggles) {
    toggle.addEventListener("change", () => {
      layers[toggle.dataset.layer]?.toggleAttribute("hidden", !toggle.checked);
      describe();
    });
  }
  describe();
}
